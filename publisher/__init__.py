"""publisher: newsletter and feed publisher for small advocacy organisations.

The flow: sources (collect) -> store -> compose -> render -> deliver, and publish (feeds).
"""

__version__ = "0.1.0"
