"""Static assets of the status page (index.html, status.css, status.js): package data."""
