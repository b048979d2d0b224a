"""Delivery backends behind the DeliveryBackend protocol: file outbox, SMTP, SendGrid."""
