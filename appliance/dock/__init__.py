"""Everything about cameras: the dock protocol, discovery, offload and the camera simulator."""
