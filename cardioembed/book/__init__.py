"""Running the notebooks with a profile and rendering the book."""
