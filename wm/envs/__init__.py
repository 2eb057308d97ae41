"""The games and what plays them: Doom TakeCover and CarRacing behind one interface (games), the fast
CarRacing renderer (fast_carracing), the ViZDoom engine's watchdog (engine_watchdog), the random data
policies (policies), V + M + C stepping an env (rollout), M's dream as an env (dream), CarRacing's
off-track stop (early_stop) and M's foresight of real deaths (foresight).
"""
