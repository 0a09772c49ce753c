"""Episode search for people: a persistent index (build), a query engine, a CLI (`search`) and a local web app.

Import from the submodules (`podsearch.search.engine`, ...); this package imports nothing so that `search --help`
and error paths stay fast.
"""
