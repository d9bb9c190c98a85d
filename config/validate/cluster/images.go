package cluster

import (
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"strings"

	validate "github.com/pulse-knative/pulse/config/validate"
)

// koImage matches a ko:// image reference wherever it appears: in an image field, and in the
// Knative ConfigMaps and environment variables that name the images their controllers use.
var koImage = regexp.MustCompile(`ko://[A-Za-z0-9._/-]+`)

// FixedImage returns the digest reference that stands for the ko:// image of importPath: a
// name under registry.invalid, which nothing can pull, with a digest derived from the import
// path, so that the same program always gets the same reference and Knative's controllers have
// no tag to resolve.
func FixedImage(importPath string) string {
	sum := sha256.Sum256([]byte(importPath))
	return "registry.invalid/" + importPath + "@sha256:" + hex.EncodeToString(sum[:])
}

// FixImages replaces every ko:// reference in a manifest with its FixedImage.
func FixImages(manifest []byte) []byte {
	return koImage.ReplaceAllFunc(manifest, func(ref []byte) []byte {
		return []byte(FixedImage(strings.TrimPrefix(string(ref), validate.KoPrefix)))
	})
}
