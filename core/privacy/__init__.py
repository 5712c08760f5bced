"""An expert's data: their export, their erasure, and the pseudonyms that replace them."""
