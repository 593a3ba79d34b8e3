"""The engines that run the app: one uvicorn process, or Ray Serve with HAProxy shedding."""
