"""textbook_reader: textbooks (`.pdf`, `.epub`, `.txt`, `.md`) read into paragraphs of prose.

A library of its own beside the study's package: it knows nothing of embeddings, and
`cardioembed` reads the user's books with it as it reads sentences with pysbd. `books`
reads each format; `cleaning` tells prose from running heads, headings, tables, code and
references by the page's layout, and counts every block it drops under a `FILTERS` name.
Its tests are tests/test_textbooks.py and tests/test_cleaning.py; its held-out benchmark
is benchmarks/textbooks.py.
"""

from textbook_reader.books import (
    SUPPORTED_EXTENSIONS,
    Book,
    Problem,
    ReaderError,
    read_book,
    read_folder,
)
from textbook_reader.cleaning import FILTERS, split_passages

__all__ = [
    "FILTERS",
    "SUPPORTED_EXTENSIONS",
    "Book",
    "Problem",
    "ReaderError",
    "read_book",
    "read_folder",
    "split_passages",
]
