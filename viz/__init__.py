"""viz: everything that draws the engine's graphs (it reads the engine; the engine never imports viz)."""
