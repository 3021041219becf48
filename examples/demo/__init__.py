"""The seed's Flask demo endpoints, ported to restkit (see ``app.py``)."""
