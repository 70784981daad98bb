"""`python -m trouter.testing --port N`: serve the fake OpenAI-compatible endpoint (instant
answers) until interrupted, for benchmarks that need an upstream in its own process."""

from trouter.testing.fake_openai import main

main()
