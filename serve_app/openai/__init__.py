"""OpenAI-compatible /v1 on the service's own ChatGLM deployment (routes: routes/openai.py)."""
