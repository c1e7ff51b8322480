module github.com/gptme/traefik-apikey-from-path

go 1.22
