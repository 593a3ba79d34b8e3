"""The live dashboard: the in-process recorder and the static page (``page.html``)."""
