"""Faust agents. Importing ``crownstream.agents.all`` registers every agent and table on the app
(``crownstream.web.all`` adds the HTTP views). Agents never import ``crownstream.web``: the web layer sits above
them."""
