# The operator image: the manager, crm-agent at /crm-agent, which backup and
# restore Jobs run in the database image (see internal/resources/agentjob.go),
# and the product owner's portal at /portal (the chart's portal.enabled).
FROM golang:1.26.10 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/manager ./cmd/manager && \
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/crm-agent ./cmd/crm-agent && \
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/portal ./cmd/portal

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/manager /manager
COPY --from=build /out/crm-agent /crm-agent
COPY --from=build /out/portal /portal
USER 65532:65532
ENTRYPOINT ["/manager"]
