import type { FastifyError } from 'fastify';
import type { App } from './app.ts';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import { AppError, errorStatus, type ErrorCode } from '../core/errors.ts';

/** Fastify's own errors that are the caller's fault, by their code. */
const frameworkErrors: Record<string, [ErrorCode, string]> = {
  FST_ERR_CTP_BODY_TOO_LARGE: ['PAYLOAD_TOO_LARGE', 'the request body is too large'],
  FST_ERR_CTP_INVALID_MEDIA_TYPE: ['UNSUPPORTED_MEDIA_TYPE', 'send the body as application/json'],
  FST_ERR_CTP_EMPTY_JSON_BODY: ['BAD_REQUEST', 'the JSON body is empty'],
  FST_ERR_CTP_INVALID_JSON_BODY: ['BAD_REQUEST', 'the body is not valid JSON'],
};

/** Every error answer has the same body: `{ error: { code, message, requestId } }`. */
export function installErrorHandlers(app: App): void {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    let appError: AppError;
    if (error instanceof AppError) appError = error;
    else if (hasZodFastifySchemaValidationErrors(error)) {
      const problems = error.validation.map((issue) => {
        const where = issue.instancePath.replace(/^\//, '').replaceAll('/', '.');
        return `${error.validationContext ?? 'request'}${where ? `.${where}` : ''}: ${issue.message}`;
      });
      appError = new AppError('BAD_REQUEST', `invalid request: ${problems.join('; ')}`);
    } else if (error.code && frameworkErrors[error.code]) {
      const [code, message] = frameworkErrors[error.code]!;
      appError = new AppError(code, message);
    } else if (error instanceof SyntaxError || (error.statusCode === 400 && /JSON/i.test(error.message))) {
      appError = new AppError('BAD_REQUEST', 'the body is not valid JSON');
    } else if (error.statusCode && error.statusCode >= 400 && error.statusCode < 500) {
      appError = new AppError(error.statusCode === 413 ? 'PAYLOAD_TOO_LARGE' : 'BAD_REQUEST', error.message);
    } else {
      request.log.error({ err: error }, 'unhandled error');
      appError = new AppError('INTERNAL', 'internal error; the server log has details under this request id');
    }
    const retryAfter = appError.details?.retryAfterSeconds;
    if (typeof retryAfter === 'number') void reply.header('retry-after', retryAfter);
    void reply.status(errorStatus[appError.code]).send({
      error: { code: appError.code, message: appError.message, requestId: request.id, ...(appError.details ? { details: appError.details } : {}) },
    });
  });

  app.setNotFoundHandler((request, reply) => {
    void reply.status(404).send({ error: { code: 'NOT_FOUND', message: `no route ${request.method} ${request.url.split('?')[0]}`, requestId: request.id } });
  });
}
