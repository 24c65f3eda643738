"""A Llama-style model split over two files: the layers and their config, and the model
that imports them."""
