"""Transitions, replay buffers and recorded episodes."""
