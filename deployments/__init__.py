"""The model side: the chat engine, the ChatGLM deployment and the script processor."""
