// Command age-oracle runs filippo.io/age, the reference implementation, as a judge of hk8s'
// own age code (src/hk8s/pki/age.py): it decrypts what hk8s encrypts and encrypts what hk8s
// must decrypt, over stdin/stdout.
//
//	age-oracle keygen              prints an identity and its recipient, one a line
//	age-oracle encrypt RECIPIENT   stdin -> age file on stdout
//	age-oracle decrypt IDENTITY    age file on stdin -> plaintext on stdout (exit 1 on error)
package main

import (
	"fmt"
	"io"
	"os"

	"filippo.io/age"
)

func run(args []string) error {
	if len(args) < 1 {
		return fmt.Errorf("usage: age-oracle keygen|encrypt RECIPIENT|decrypt IDENTITY")
	}
	switch args[0] {
	case "keygen":
		identity, err := age.GenerateX25519Identity()
		if err != nil {
			return err
		}
		fmt.Println(identity.String())
		fmt.Println(identity.Recipient().String())
		return nil
	case "encrypt":
		recipient, err := age.ParseX25519Recipient(args[1])
		if err != nil {
			return err
		}
		w, err := age.Encrypt(os.Stdout, recipient)
		if err != nil {
			return err
		}
		if _, err := io.Copy(w, os.Stdin); err != nil {
			return err
		}
		return w.Close()
	case "decrypt":
		identity, err := age.ParseX25519Identity(args[1])
		if err != nil {
			return err
		}
		r, err := age.Decrypt(os.Stdin, identity)
		if err != nil {
			return err
		}
		_, err = io.Copy(os.Stdout, r)
		return err
	}
	return fmt.Errorf("unknown command %q", args[0])
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
