"""Multi-turn chat: the chat engine (``chat.py``), the session store and its tier policy
(``store.py``, ``config.py``), a session's KV in its hot and warm forms (``forms.py``), cold
spill files (``spill.py``), shared prefix blocks (``prefix_blocks.py``) and chat formatting
(``format.py``). Importing this package imports none of them."""
