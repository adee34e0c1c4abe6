"""Webhooks per Standard Webhooks v1: endpoints, signed messages, deliveries with retries (docs/webhooks.md)."""
