"""Machine learning: plain functions on tensors and arrays. Never imports the web, the DB or storage."""
