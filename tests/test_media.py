"""Images (issue 20, part C): uploads decoded and re-encoded with Pillow (EXIF and GPS gone,
orientation applied, dimensions bounded, an email size 1,200 px wide), bombs and non-images
refused with their message, a 10 MB+ upload cut while streaming through a real server, the
same image twice kept once, served from the store with long-lived caching, written under
media/, and where each image is used; on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import io
import random
import re
import select
import socket
import struct
import zlib
from dataclasses import replace
from datetime import timedelta

import httpx
import pytest
from PIL import Image, ImageCms

from publisher.items import Item
from publisher.pipeline import build_feeds
from publisher.publish.images import (
    DAMAGED,
    NOT_AN_IMAGE,
    ImageError,
    clean_image,
)
from publisher.publish.media import write_media
from publisher.store import audit
from publisher.store.items import upsert_items
from publisher.store.media import (
    FIRST_USES,
    MediaError,
    NewImage,
    delete_image,
    get_image,
    image_file,
    image_usage,
    list_images,
    media_url,
    save_image,
)
from tests.admin_support import ADMIN_CONFIG, STAFF, add_accounts, csrf_of, log_in
from tests.conftest import FIXED_NOW, present
from tests.web_support import serve

MiB = 1024 * 1024
GPS_IFD = 0x8825
ORIENTATION = 0x0112
PROFILE = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()  # dated: once


def photo(size: tuple[int, int] = (300, 200), *, orientation: int = 6) -> bytes:
    """A JPEG as a phone makes it: left half red, right half blue, stored sideways
    (orientation 6: turn 90 degrees clockwise to show), with a GPS position and a comment."""
    image = Image.new("RGB", size, (220, 20, 20))
    image.paste((20, 20, 220), (size[0] // 2, 0, size[0], size[1]))
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    exif[0x010F] = "PhoneMaker"
    gps = exif.get_ifd(GPS_IFD)
    gps.update({1: "N", 2: (40.0, 26.0, 46.0), 3: "W", 4: (79.0, 58.0, 56.0)})
    buffer = io.BytesIO()
    image.save(
        buffer, "JPEG", exif=exif.tobytes(), comment=b"taken at the safe house",
        icc_profile=PROFILE,
    )  # fmt: skip
    return buffer.getvalue()


def png(size: tuple[int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (10, 120, 30)).save(buffer, "PNG")
    return buffer.getvalue()


def png_declaring(width: int, height: int) -> bytes:
    """A 60-byte PNG whose header claims `width` x `height` (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 16)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


def gif_frames(count: int) -> bytes:
    frames = [Image.new("RGB", (4, 4), (i % 256, 255 - i % 256, 0)) for i in range(count)]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=40)
    return buffer.getvalue()


def tiny_frames_gif(count: int) -> bytes:
    """A GIF of `count` 1 x 1 frames, 15 bytes each (600,000 of them fit in 10 MB)."""
    head = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff"
    frame = b"\x2c\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02\x44\x01\x00"
    return head + frame * count + b"\x3b"


SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'


# --- processing ---------------------------------------------------------------------------


def test_exif_and_gps_are_stripped_and_the_orientation_applied():
    upload = photo()
    sent = Image.open(io.BytesIO(upload))
    assert sent.getexif().get_ifd(GPS_IFD) and "icc_profile" in sent.info  # the input has them
    clean = clean_image(upload)
    for rendition in (clean.original, clean.email):
        back = Image.open(io.BytesIO(rendition.data))
        assert back.format == "JPEG" and clean.media_type == "image/jpeg"
        assert dict(back.getexif()) == {} and back.getexif().get_ifd(GPS_IFD) == {}
        assert "exif" not in back.info and "comment" not in back.info
        assert "icc_profile" not in back.info and "xmp" not in back.info
        assert b"Exif" not in rendition.data and b"safe house" not in rendition.data
        assert b"PhoneMaker" not in rendition.data
        # stored sideways, shown upright: 200 wide, 300 high, the red half now on top
        assert back.size == (200, 300) == (rendition.width, rendition.height)
        red, blue = back.getpixel((100, 30)), back.getpixel((100, 270))
        assert isinstance(red, tuple) and isinstance(blue, tuple)
        assert red[0] > 180 > red[2] and blue[2] > 180 > blue[0]


def test_the_original_is_bounded_and_the_email_size_is_1200_wide_never_upscaled():
    clean = clean_image(png((3000, 2000)))
    assert (clean.original.width, clean.original.height) == (2400, 1600)
    assert (clean.email.width, clean.email.height) == (1200, 800)
    assert Image.open(io.BytesIO(clean.email.data)).size == (1200, 800)
    assert clean.media_type == "image/png" and clean.extension == "png"
    small = clean_image(png((800, 600)))
    assert (small.original.width, small.email.width, small.email.height) == (800, 800, 600)
    tall = clean_image(png((1000, 5000)))
    assert (tall.original.width, tall.original.height) == (480, 2400)


def test_an_animated_gif_stays_animated_and_a_long_one_is_refused():
    clean = clean_image(gif_frames(12))
    back = Image.open(io.BytesIO(clean.original.data))
    assert back.format == "GIF" and getattr(back, "n_frames", 1) == 12 and clean.frames == 12
    with pytest.raises(ImageError, match=r"This animation is too long: more than 300 frames"):
        clean_image(gif_frames(301))
    frames = [Image.new("RGB", (1000, 1000), (i, 0, 0)) for i in range(41)]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:])
    with pytest.raises(ImageError, match=r"too large: more than 40 frames of 1000 x 1000"):
        clean_image(buffer.getvalue())


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("bomb", png_declaring(100_000, 100_000), "This image is too large: 10,000,000,000 pixels"),
        ("bomb-just-over", png_declaring(10_000, 6_000), "This image is too large: 60,000,000"),
        ("text-named-jpg", b"These are not the pixels you are looking for.\n" * 20, NOT_AN_IMAGE),
        ("svg", SVG, NOT_AN_IMAGE),
        ("truncated-jpeg", photo((800, 600))[:1500], DAMAGED),
        ("empty", b"", NOT_AN_IMAGE),
        ("gif-600000-frames", tiny_frames_gif(600_000), "This animation is too long"),
    ],
    ids=lambda value: value if isinstance(value, str) and len(value) < 30 else "",
)
def test_bombs_and_non_images_are_refused_with_their_message(name, data, message):
    with pytest.raises(ImageError) as refused:
        clean_image(data)
    assert str(refused.value).startswith(message)


# --- the store ----------------------------------------------------------------------------


def new_image(data: bytes, name: str = "March photo.png", alt: str = "A march") -> NewImage:
    clean = clean_image(data)
    return NewImage(
        sha256=hashlib.sha256(data).hexdigest(), name=name, media_type=clean.media_type,
        extension=clean.extension, width=clean.original.width, height=clean.original.height,
        data=clean.original.data, email_width=clean.email.width,
        email_height=clean.email.height, email_data=clean.email.data, alt=alt,
        uploaded_by="edu@example.org",
    )  # fmt: skip


def test_the_same_image_twice_is_one_and_files_are_named_by_the_rule(store):
    first, created = save_image(store, new_image(png((1600, 900))), now=FIXED_NOW)
    again, created_again = save_image(store, new_image(png((1600, 900)), "copy.png"), now=FIXED_NOW)
    assert created and not created_again and again == first
    assert first.file == f"{first.id}-march-photo.png"
    assert first.email_file == f"{first.id}-march-photo-email.png"
    assert media_url("https://e.org/news/", first.file) == f"https://e.org/news/media/{first.file}"
    assert [i.id for i in list_images(store)] == [first.id]
    original = present(image_file(store, first.file))
    email = present(image_file(store, first.email_file))
    assert Image.open(io.BytesIO(original.data)).size == (1600, 900)
    assert Image.open(io.BytesIO(email.data)).size == (1200, 675) and email.email
    assert image_file(store, f"{first.id}-other.png") is None
    assert image_file(store, "x.png") is None and image_file(store, "999-march-photo.png") is None


def test_usage_lists_the_items_that_reference_an_image_and_delete_is_refused_meanwhile(store):
    used, _ = save_image(store, new_image(png((400, 300))), now=FIXED_NOW)
    unused, _ = save_image(store, new_image(png((300, 300)), "other.png"), now=FIXED_NOW)
    public = "https://www.example.org/news"
    items = [
        Item(id="newsroom:1", title="Our march", url="https://e.org/1", published=FIXED_NOW,
             source="newsroom", image=media_url(public, used.file), image_alt="A march"),
        Item(id="posts:2", title="In the body", url="https://e.org/2", published=FIXED_NOW,
             source="posts", body_html=f'<p><img src="{media_url(public, used.email_file)}" '
             'alt="x"></p>'),
        Item(id="posts:3", title="Unrelated", url="https://e.org/3", published=FIXED_NOW,
             source="posts", body_html=f'<a href="{public}/media/{used.id}-another.png">x</a>'),
    ]  # fmt: skip
    upsert_items(store, items, now=FIXED_NOW)
    usage = image_usage(store)
    assert sorted(u.item_id for u in usage[used.id].first) == ["newsroom:1", "posts:2"]
    assert usage[used.id].count == 2 and unused.id not in usage
    named = image_usage(store, first=1)[used.id]  # the newest named, the others counted
    assert ([u.item_id for u in named.first], named.count) == (["newsroom:1"], 2)
    with pytest.raises(MediaError, match="This image is used by .*Our march"):
        delete_image(store, used.id)
    assert get_image(store, used.id) is not None
    assert delete_image(store, unused.id).id == unused.id and get_image(store, unused.id) is None
    later, _ = save_image(store, new_image(png((300, 200)), "other.png"), now=FIXED_NOW)
    assert later.id > unused.id  # a deleted image's id (and cached file names) never come back


def test_stored_images_are_written_under_media_when_feeds_are_built(store, make_config):
    config = make_config()
    image, _ = save_image(store, new_image(png((1500, 1000))), now=FIXED_NOW)
    folder = config.resolve("media")
    build_feeds(config, store, now=FIXED_NOW)
    assert (folder / image.file).read_bytes() == present(image_file(store, image.file)).data
    assert Image.open(folder / image.email_file).size == (1200, 800)
    (folder / image.file).unlink()  # cleared, or uploaded on another host
    assert write_media(config, store) == 1 and (folder / image.file).exists()
    assert write_media(config, store) == 0


# --- through the real server --------------------------------------------------------------


def editor_client(url: str) -> tuple[httpx.Client, str]:
    client = httpx.Client(base_url=url, timeout=60)
    log_in(client, STAFF["editor"])
    page = client.get("/admin/media")
    assert page.status_code == 200
    return client, csrf_of(page.text)


def upload(client: httpx.Client, csrf: str, data: bytes, name: str, alt: str = "A march"):
    return client.post(
        "/admin/media/upload", data={"csrf": csrf, "alt": alt},
        files={"file": (name, data, "image/jpeg")},
    )  # fmt: skip


def test_an_upload_is_stripped_stored_served_with_caching_and_written(project, store):
    add_accounts(store)
    with serve(project, store, config_text=ADMIN_CONFIG) as served:
        client, csrf = editor_client(served.url)
        answer = upload(client, csrf, photo((3000, 2000)), "IMG_0001.JPG")
        assert answer.status_code == 303
        [image] = list_images(store)
        assert (image.name, image.alt, image.uploaded_by) == (
            "IMG_0001.JPG",
            "A march",
            STAFF["editor"],
        )
        assert (image.width, image.height, image.email_width) == (1600, 2400, 1200)
        listed = client.get(answer.url.join(answer.headers["location"])).text
        assert f"{served.config.organisation.public_url}/media/{image.file}" in listed
        assert "location data removed" in listed

        served_file = httpx.get(f"{served.url}/media/{image.file}")
        assert served_file.status_code == 200
        assert served_file.headers["content-type"] == "image/jpeg"
        assert served_file.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert served_file.headers["x-content-type-options"] == "nosniff"
        policy = served_file.headers["content-security-policy"]
        assert "default-src 'none'" in policy and "sandbox" in policy and "script" not in policy
        back = Image.open(io.BytesIO(served_file.content))
        assert back.size == (1600, 2400) and dict(back.getexif()) == {}
        etag = served_file.headers["etag"]
        cached = httpx.get(f"{served.url}/media/{image.file}", headers={"if-none-match": etag})
        assert cached.status_code == 304 and cached.content == b""
        email = httpx.get(f"{served.url}/media/{image.email_file}")
        assert Image.open(io.BytesIO(email.content)).size == (1200, 1800)
        assert httpx.get(f"{served.url}/media/{image.id}-guess.jpg").status_code == 404

        written = project / "media" / image.file
        assert written.read_bytes() == served_file.content
        assert (project / "media" / image.email_file).read_bytes() == email.content

        again = upload(client, csrf, photo((3000, 2000)), "same-again.jpg")
        assert again.status_code == 303 and "uploaded%20already" in again.headers["location"]
        assert len(list_images(store)) == 1

        noise = Image.frombytes("RGB", (2600, 1800), random.Random(1).randbytes(2600 * 1800 * 3))
        buffer = io.BytesIO()
        noise.save(buffer, "JPEG", quality=95)
        assert 4 * MiB < len(buffer.getvalue()) < 10 * MiB  # a big photo: well over 1 MB
        assert upload(client, csrf, buffer.getvalue(), "big.jpg").status_code == 303
        big = next(i for i in list_images(store) if i.name == "big.jpg")
        assert (big.width, big.height, big.email_width) == (2400, 1662, 1200)

        post = Item(
            id="newsroom:march", title="The march", url="https://e.org/march",
            published=FIXED_NOW, source="newsroom",
            image=media_url(served.config.organisation.public_url, image.file),
        )  # fmt: skip
        upsert_items(store, [post], now=FIXED_NOW)
        listed = client.get("/admin/media").text
        assert '<a href="https://e.org/march">The march</a> (newsroom)' in listed
        assert "Delete IMG_0001.JPG" not in listed  # in use: no delete button
        later = [
            replace(post, id=f"newsroom:{n}", title=f"Story {n}", url=f"https://e.org/{n}",
                    published=FIXED_NOW + timedelta(hours=n))
            for n in range(1, FIRST_USES + 2)
        ]  # fmt: skip
        upsert_items(store, later, now=FIXED_NOW)
        listed = client.get("/admin/media").text  # the newest named, the rest counted
        assert ">Story 11</a>" in listed and ">Story 2</a>" in listed
        assert ">Story 1</a>" not in listed and ">The march</a>" not in listed
        assert "and 2 more" in listed
    actions = [e.action for e in audit.recent(store)]
    assert actions.count("image uploaded") == 2  # the same photo again is not a new upload


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("holiday.jpg", b"not a picture at all\n" * 50, NOT_AN_IMAGE),
        ("logo.svg", SVG, NOT_AN_IMAGE),
        ("bomb.png", png_declaring(100_000, 100_000), "This image is too large: 10,000,000,000"),
        ("cut.jpg", photo((800, 600))[:1500], DAMAGED),
    ],
    ids=lambda value: value if isinstance(value, str) and len(value) < 30 else "",
)
def test_refusals_are_shown_on_the_page_and_nothing_is_stored(project, store, name, data, message):
    add_accounts(store)
    with serve(project, store, config_text=ADMIN_CONFIG) as served:
        client, csrf = editor_client(served.url)
        answer = upload(client, csrf, data, name)
        assert answer.status_code == 400
        alert = present(re.search(r'<p class="error" role="alert">([^<]*)</p>', answer.text))
        assert alert.group(1).startswith(f"{name} was not uploaded. {message}")
        no_alt = upload(client, csrf, photo(), "fine.jpg", alt="  ")
        assert no_alt.status_code == 400 and "Describe the image" in no_alt.text
    assert list_images(store) == []
    assert not (project / "media").exists()


def test_an_upload_over_10_mb_is_cut_while_streaming_and_nothing_is_stored(project, store):
    """A logged-in editor's chunked upload that keeps sending: the 413 arrives while the
    client is still sending (it stops as soon as the answer is there), nothing is stored."""
    add_accounts(store)
    total = 64 * MiB
    with serve(project, store, config_text=ADMIN_CONFIG) as served:
        client, csrf = editor_client(served.url)
        cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
        port = int(served.url.rsplit(":", 1)[1])
        boundary = "media-test-boundary"
        opening = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="csrf"\r\n\r\n{csrf}\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="alt"\r\n\r\nbig\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.jpg"'
            "\r\nContent-Type: image/jpeg\r\n\r\n"
        ).encode() + photo()
        head = (
            f"POST /admin/media/upload HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Cookie: {cookie}\r\nTransfer-Encoding: chunked\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\n\r\n"
        ).encode()
        chunk = b"\xff" * MiB
        sent, answered = 0, b""
        with socket.create_connection(("127.0.0.1", port), timeout=120) as sock:
            sock.sendall(head + b"%x\r\n" % len(opening) + opening + b"\r\n")
            try:
                while sent < total and not select.select([sock], [], [], 0)[0]:
                    sock.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
                    sent += len(chunk)
            except OSError:  # the server stopped reading: its answer is there to read
                pass
            while b"</html>" not in answered:  # the whole "Too large" page
                part = sock.recv(4096)
                if not part:
                    break
                answered += part
        assert answered.startswith(b"HTTP/1.1 413"), answered[:100]
        assert b"That request was too large." in answered
        assert 10 * MiB <= sent < total  # answered while the upload was still going
    assert list_images(store) == []
    assert not (project / "media").exists()
    assert "image uploaded" not in [e.action for e in audit.recent(store)]


def test_a_viewer_cannot_upload_or_delete_nor_anyone_without_the_form_token(project, store):
    add_accounts(store)
    image, _ = save_image(store, new_image(png((400, 300))), now=FIXED_NOW)
    with serve(project, store, config_text=ADMIN_CONFIG) as served:
        client = httpx.Client(base_url=served.url, timeout=60)
        log_in(client, STAFF["viewer"])
        page = client.get("/admin/media")
        assert page.status_code == 200 and image.file in page.text
        assert 'name="file"' not in page.text and "Delete" not in page.text
        csrf = csrf_of(page.text)
        refused = upload(client, csrf, photo(), "mine.jpg")
        assert refused.status_code == 403
        gone = client.post("/admin/media/delete", data={"csrf": csrf, "image": str(image.id)})
        assert gone.status_code == 403
        editor, _ = editor_client(served.url)
        assert upload(editor, "", photo(), "no-token.jpg").status_code == 403  # no CSRF token
    assert [i.id for i in list_images(store)] == [image.id]


def test_an_editor_deletes_an_unused_image_and_its_files_go(project, store):
    add_accounts(store)
    with serve(project, store, config_text=ADMIN_CONFIG) as served:
        client, csrf = editor_client(served.url)
        assert upload(client, csrf, png((500, 400)), "flyer.png").status_code == 303
        [image] = list_images(store)
        assert (project / "media" / image.file).exists()
        answer = client.post("/admin/media/delete", data={"csrf": csrf, "image": str(image.id)})
        assert answer.status_code == 303
        assert list_images(store) == [] and not (project / "media" / image.file).exists()
        assert httpx.get(f"{served.url}/media/{image.file}").status_code == 404


def test_damaged_files_of_every_format_are_refused_or_cleaned_never_a_crash():
    """Bytes flipped and files cut short, from a fixed seed: ImageError or a clean image."""
    rng = random.Random(20)
    outcomes = {"refused": 0, "cleaned": 0}
    for kind in ("JPEG", "PNG", "WEBP", "GIF"):
        buffer = io.BytesIO()
        Image.effect_noise((64, 48), 40).convert("RGB").save(buffer, kind)
        for _ in range(40):
            data = bytearray(buffer.getvalue())
            for _ in range(rng.randint(1, 8)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            cut = data[: rng.randrange(len(data))] if rng.random() < 0.3 else data
            try:
                clean = clean_image(bytes(cut))
            except ImageError:
                outcomes["refused"] += 1
                continue
            assert Image.open(io.BytesIO(clean.original.data)).getexif() == {}
            outcomes["cleaned"] += 1
    assert outcomes["refused"] > 0 and outcomes["cleaned"] > 0
