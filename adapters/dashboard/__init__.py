"""The coordinator dashboard at `/`: server-rendered HTML with server-drawn SVG charts."""
