// Command bboltcheck is the upstream oracle for hk8s' bbolt reader/writer and etcd snapshots:
// it opens a file with go.etcd.io/bbolt (read-only), runs bbolt's own consistency check
// (tx.Check) and prints every top-level bucket's keys and values as JSON, so tests can compare
// what upstream reads with what hk8s wrote. An etcd snapshot's SHA-256 trailer is verified and
// cut off first, as etcdutl's snapshot restore does (hasChecksum: size % 512 == sha256.Size).
//
// "bboltcheck write FILE" has bbolt write a database shaped like etcd's (a "key" bucket large
// enough for branch pages, a small "meta" bucket that bbolt stores inline), so tests can check
// that hk8s reads what upstream writes too.
package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"

	bolt "go.etcd.io/bbolt"
)

type report struct {
	Trailer bool                         `json:"trailer"`
	Buckets map[string]map[string]string `json:"buckets"`
}

func main() {
	var err error
	if len(os.Args) == 3 && os.Args[1] == "write" {
		err = write(os.Args[2])
	} else {
		err = run(os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func write(path string) error {
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		return err
	}
	defer db.Close()
	return db.Update(func(tx *bolt.Tx) error {
		keys, err := tx.CreateBucket([]byte("key"))
		if err != nil {
			return err
		}
		for i := 0; i < 5000; i++ {
			k := fmt.Appendf(nil, "%016x_%016x", i+2, 0)
			if err := keys.Put(k, bytes.Repeat([]byte{byte(i)}, i%300)); err != nil {
				return err
			}
		}
		meta, err := tx.CreateBucket([]byte("meta"))
		if err != nil {
			return err
		}
		return meta.Put([]byte("term"), []byte{0, 0, 0, 0, 0, 0, 0, 3})
	})
}

func run(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	out := report{Buckets: map[string]map[string]string{}}
	if len(data)%512 == sha256.Size {
		body, sum := data[:len(data)-sha256.Size], data[len(data)-sha256.Size:]
		want := sha256.Sum256(body)
		if !bytes.Equal(want[:], sum) {
			return fmt.Errorf("sha256 trailer mismatch")
		}
		data, out.Trailer = body, true
	}
	tmp, err := os.CreateTemp("", "bboltcheck-*.db")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		return err
	}
	tmp.Close()
	db, err := bolt.Open(tmp.Name(), 0o400, &bolt.Options{ReadOnly: true})
	if err != nil {
		return err
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		for cerr := range tx.Check() {
			return fmt.Errorf("bbolt check: %w", cerr)
		}
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			items := map[string]string{}
			out.Buckets[string(name)] = items
			return b.ForEach(func(k, v []byte) error {
				items[hex.EncodeToString(k)] = hex.EncodeToString(v)
				return nil
			})
		})
	})
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(out)
}
