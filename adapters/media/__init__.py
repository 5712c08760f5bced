"""Image bytes by SHA-256 (the `Media` port), and the adapters that decode and fetch them."""
