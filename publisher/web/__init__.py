"""The subscriber web (`publisher serve`): sign-up with double opt-in, unsubscribe, the
preference centre and SendGrid's event webhook. It calls the same store functions as the CLI."""

from publisher.web.app import create_app

__all__ = ["create_app"]
