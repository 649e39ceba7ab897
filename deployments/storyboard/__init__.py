"""The storyboard domain: what a storyboard is (models and every limit and vocabulary, once, in
`constants`), how the model is asked for one (`prompts`), how its reply becomes one (`parser`),
how one is written without a model (`fallback`) and how good one is (`quality`).

Imports no Ray, no FastAPI and nothing from the HTTP side, which imports this, never the other
way (the import contracts in pyproject.toml keep it so).
"""
