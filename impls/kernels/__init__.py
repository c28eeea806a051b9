"""C++ and CUDA sources of the compiled op, and their build (build.py)."""
