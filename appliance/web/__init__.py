"""The web app: Tornado handlers and the browser front end."""
