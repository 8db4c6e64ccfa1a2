"""QGIS user interface: styles, docks and dialogs. They run the Processing algorithms; they never
compute results by another path."""
