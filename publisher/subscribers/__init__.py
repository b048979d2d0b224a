"""Subscriber rules kept out of the store: reading subscriber files (files.py), what a
status change or an erasure means (consent.py), what SendGrid's events mean (events.py).
They call the store's queries and transactions (publisher.store); the store never imports
them."""
