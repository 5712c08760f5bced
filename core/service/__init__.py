"""The core's work: tasks out, answers in, campaigns posted, cards delivered."""
