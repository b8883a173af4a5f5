"""The provider seam and its SDK implementations (Anthropic, OpenAI and compatible servers,
Gemini), with costs and the retry policy."""
