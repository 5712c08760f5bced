"""The domain: campaigns, items, kinds, experts, cards, answers, and the rules of time and slots."""
