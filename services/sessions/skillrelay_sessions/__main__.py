from skillrelay_sessions.app import main

main()
