"""The plug-in's tests run with Tacit's own environment, installed or not: this folder
goes on sys.path (pytest puts a conftest's folder there), so `tacit_swipe` imports."""
