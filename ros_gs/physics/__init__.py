"""Physics bound to Gaussians (particles, bodies, visual forces). Not implemented yet: see the open issues."""
