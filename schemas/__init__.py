"""The message contracts of perfloop: vocabulary, messages, topics and configuration."""
