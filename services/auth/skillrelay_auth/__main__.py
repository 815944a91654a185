from skillrelay_auth.app import main

main()
