"""Parts of the chair board: the live board itself, its legend, and pairing a wall display."""
