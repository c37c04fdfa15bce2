package jwks

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strconv"
)

// FileSource reads a JWKS document from disk: a mounted secret, a file a
// sidecar keeps up to date, or a development key set. A refresh that finds
// the same size and modification time costs one stat.
type FileSource struct {
	Path string
}

func (s *FileSource) String() string { return "file:" + s.Path }

// Fetch implements Source.
func (s *FileSource) Fetch(_ context.Context, prevVersion string) ([]byte, string, error) {
	f, err := os.Open(s.Path)
	if err != nil {
		return nil, "", fmt.Errorf("jwks: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, "", fmt.Errorf("jwks: %w", err)
	}
	stamp := strconv.FormatInt(fi.ModTime().UnixNano(), 10) + "/" + strconv.FormatInt(fi.Size(), 10)
	if prevVersion != "" && len(prevVersion) > len(stamp) && prevVersion[:len(stamp)+1] == stamp+"/" {
		return nil, "", ErrNotModified
	}
	doc, err := io.ReadAll(io.LimitReader(f, MaxDocumentBytes+1))
	if err != nil {
		return nil, "", fmt.Errorf("jwks: reading %s: %w", s.Path, err)
	}
	if len(doc) > MaxDocumentBytes {
		return nil, "", fmt.Errorf("jwks: %s exceeds %d bytes", s.Path, MaxDocumentBytes)
	}
	sum := sha256.Sum256(doc)
	return doc, stamp + "/" + hex.EncodeToString(sum[:]), nil
}
