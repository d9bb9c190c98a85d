package observe

// Version is the version Pulse was built as; ko.yaml sets it with -ldflags -X from $VERSION
// or the git commit. Functions log it when they start.
var Version = "dev"
