"""Test doubles for trouter's own tests and for users' tests of their deployments."""

from trouter.testing.fake_openai import (
    Drop,
    FakeOpenAI,
    FakeRequest,
    Hang,
    Malformed,
    Reply,
    Status,
)

__all__ = ["Drop", "FakeOpenAI", "FakeRequest", "Hang", "Malformed", "Reply", "Status"]
