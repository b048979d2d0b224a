"""docs/webhooks.md's Node verification, run as written with `node` on deliveries signed by
the `standardwebhooks` library (the Python one is the library's own `verify`)."""

from __future__ import annotations

import json
import re
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

from standardwebhooks import Webhook

from publisher.store import webhooks

DOC = Path(__file__).resolve().parent.parent / "docs" / "webhooks.md"
RUN = """
let input = "";
process.stdin.on("data", (chunk) => (input += chunk));
process.stdin.on("end", () => {
  const { secret, headers, body } = JSON.parse(input);
  try {
    console.log(JSON.stringify(verify(secret, headers, body)));
  } catch (error) {
    console.log("refused: " + error.message);
  }
});
"""


def node_verify(secret: str, headers: dict[str, str], body: str) -> str:
    (snippet,) = re.findall(r"```js\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    given = json.dumps({"secret": secret, "headers": headers, "body": body})
    done = subprocess.run(
        ["node", "-e", snippet + RUN], input=given, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def signed(secret: str, body: str, at: datetime) -> dict[str, str]:
    signature = Webhook(secret).sign("msg_7_1", at, body)
    return {
        "webhook-id": "msg_7_1",
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature,
    }


def test_the_documented_node_verify_accepts_a_signed_body_and_refuses_the_rest() -> None:
    secret, body = webhooks.new_secret(), json.dumps({"type": "post.published", "data": {}})
    now = datetime.now(UTC)  # the snippet checks the timestamp against the real clock
    assert json.loads(node_verify(secret, signed(secret, body, now), body)) == json.loads(body)
    other = webhooks.new_secret()
    assert node_verify(other, signed(secret, body, now), body) == "refused: bad signature"
    tampered = body.replace("post.published", "post.retired")
    assert node_verify(secret, signed(secret, body, now), tampered) == "refused: bad signature"
    old = now - timedelta(minutes=10)
    assert node_verify(secret, signed(secret, body, old), body) == "refused: stale webhook"
