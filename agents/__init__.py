"""Faust agents. Importing ``crownstream.agents.all`` registers every agent, table and view on the app."""
