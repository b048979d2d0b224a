"""Images in a real browser (Debian's Chromium driven by Playwright) against a real server,
on SQLite and PostgreSQL: an editor uploads a phone photo with its alt text and sees it
listed (thumbnail, name, size, addresses), the photo served without its location; a refused
file shows its message; a viewer sees the images but has no upload control, and a forced
upload is refused. Every page is checked with axe-core (no serious or critical violation)."""

from __future__ import annotations

import io

import httpx
import pytest
from PIL import Image
from playwright.sync_api import expect

from publisher.store.media import list_images
from tests.admin_support import ADMIN_CONFIG, STAFF, add_accounts
from tests.test_admin_browser import browser, log_in, new_page  # noqa: F401 - the fixture
from tests.test_media import GPS_IFD, photo
from tests.test_web_browser import Checked
from tests.web_support import serve

pytestmark = pytest.mark.browser


def test_an_editor_uploads_a_photo_and_a_viewer_cannot(
    browser,  # noqa: F811 - the fixture imported above
    project,
    store,
    tmp_path,
    guide_shot,
):
    shots = tmp_path / "screenshots"
    shots.mkdir()
    add_accounts(store)
    march = tmp_path / "march-on-city-hall.jpg"
    march.write_bytes(photo((3000, 2000)))
    assert Image.open(march).getexif().get_ifd(GPS_IFD)  # the phone's GPS position
    fake = tmp_path / "flyer.jpg"
    fake.write_text("a flyer, but as text\n" * 40, encoding="utf-8")
    with serve(project, store, config_text=ADMIN_CONFIG) as served:
        page = new_page(browser)
        pages = Checked(page, shots)
        log_in(page, served.url, STAFF["editor"])
        page.get_by_role("link", name="Images").click()
        expect(page.get_by_role("heading", name="Images", exact=True)).to_be_visible()
        pages.check("media-empty")

        page.get_by_label("Image file").set_input_files(str(fake))
        page.get_by_label("Description (alt text)").fill("A flyer")
        page.get_by_role("button", name="Upload").click()
        expect(page.get_by_role("alert")).to_have_text(
            "flyer.jpg was not uploaded. This file is not a JPEG, PNG, WebP or GIF image."
        )
        pages.check("media-refused")

        page.get_by_label("Image file").set_input_files(str(march))
        page.get_by_label("Description (alt text)").fill("Nurses marching on City Hall")
        guide_shot(page, "images-upload")
        page.get_by_role("button", name="Upload").click()
        expect(page.get_by_role("status")).to_contain_text("Uploaded march-on-city-hall.jpg")
        [image] = list_images(store)
        item = page.locator(f'li[data-image="{image.file}"]')
        expect(item.locator("dd.name")).to_have_text("march-on-city-hall.jpg")
        expect(item.locator("dd.alt")).to_have_text("Nurses marching on City Hall")
        expect(item.locator("dd.dimensions")).to_contain_text("1600 × 2400 px")
        expect(item.locator("dd.uploaded")).to_contain_text(f"by {STAFF['editor']}")
        public = served.config.organisation.public_url
        expect(item.locator("code.address").first).to_have_text(f"{public}/media/{image.file}")
        expect(item.locator("code.email")).to_have_text(f"{public}/media/{image.email_file}")
        thumbnail = item.get_by_role("img", name="Nurses marching on City Hall")
        expect(thumbnail).to_be_visible()
        page.wait_for_function(
            "img => img.complete && img.naturalWidth === 1200", arg=thumbnail.element_handle()
        )
        guide_shot(page, "images-list", full_page=True)
        pages.check("media-listed")
        served_photo = httpx.get(f"{served.url}/media/{image.file}").content
        assert Image.open(io.BytesIO(served_photo)).getexif().get_ifd(GPS_IFD) == {}

        viewer = new_page(browser, 390)
        pages.page = viewer
        log_in(viewer, served.url, STAFF["viewer"])
        viewer.get_by_role("link", name="Images").click()
        expect(viewer.locator(f'li[data-image="{image.file}"] dd.alt')).to_be_visible()
        assert viewer.get_by_label("Image file").count() == 0
        assert viewer.get_by_role("button", name="Upload").count() == 0
        assert viewer.get_by_role("button", name="Delete march-on-city-hall.jpg").count() == 0
        pages.check("media-as-viewer")
        token = viewer.locator("form.logout input[name=csrf]").input_value()
        forced = viewer.request.post(
            f"{served.url}/admin/media/upload",
            multipart={
                "csrf": token,
                "alt": "mine",
                "file": {"name": "other.png", "mimeType": "image/png",
                         "buffer": photo((200, 100), orientation=1)},
            },
        )  # fmt: skip
        assert forced.status == 403
        forced_delete = viewer.request.post(
            f"{served.url}/admin/media/delete", form={"csrf": token, "image": str(image.id)}
        )
        assert forced_delete.status == 403
    assert [i.id for i in list_images(store)] == [image.id]
    assert len(pages.seen) == 4
