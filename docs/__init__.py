if __name__ != "nlpspec.docs":  # one name per module: the folder is mapped into nlpspec (pyproject.toml)
    raise ImportError(f"import nlpspec.docs, not {__name__}: the checkout's docs/ is the package nlpspec.docs")
