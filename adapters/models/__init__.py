"""Model endpoints: the Drafter port over the official `openai` client."""
