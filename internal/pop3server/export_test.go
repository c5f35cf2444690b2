package pop3server

// DrainMargin exposes drainMargin to the external tests.
const DrainMargin = drainMargin
